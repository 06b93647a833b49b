import { defineConfig } from 'vite';

// The node serves dist/ at `/`, so the build uses relative asset paths.
export default defineConfig({
  base: './',
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
  server: { proxy: { '/rustorium.v1.Store': 'http://127.0.0.1:7070', '/metrics': 'http://127.0.0.1:7070', '/api': 'http://127.0.0.1:7070' } },
});
