//! Bearer-token authorization: writes need the token when one is set; reads
//! too when `protect_reads` is on. Tokens are compared in constant time.

use tonic::{Request, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Clone, Debug, Default)]
pub struct Auth {
    token: Option<String>,
    protect_reads: bool,
}

impl Auth {
    pub fn new(token: Option<String>, protect_reads: bool) -> Self {
        Self {
            token: token.filter(|t| !t.is_empty()),
            protect_reads,
        }
    }

    pub fn check<T>(&self, request: &Request<T>, access: Access) -> Result<(), Status> {
        let Some(expected) = &self.token else { return Ok(()) };
        if access == Access::Read && !self.protect_reads {
            return Ok(());
        }
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("this server requires `authorization: Bearer <token>`"))?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization header must be `Bearer <token>`"))?;
        if constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Status::permission_denied("wrong bearer token"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
