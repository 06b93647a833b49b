// Draws a proof as the path from the leaf up to the root: one row per level,
// the path node on the side its key bit chooses and the sibling on the other,
// empty siblings marked.

const SVG = 'http://www.w3.org/2000/svg';

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

function short(decimal) {
  const s = String(decimal);
  return s.length > 14 ? `${s.slice(0, 6)}…${s.slice(-6)}` : s;
}

/**
 * @param container element to draw into
 * @param proof {existence, siblings: string[] (decimal), node_aux?}
 * @param keyBits bits of the key's field element, least significant first
 * @param root decimal root
 */
export function drawProof(container, proof, keyBits, root) {
  container.replaceChildren();
  const depth = proof.siblings.length;
  const rowHeight = 46;
  const width = 520;
  const height = (depth + 2) * rowHeight + 10;
  const svg = element('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `proof path of depth ${depth}` });
  svg.classList.add('proof-svg');
  const box = (x, y, label, kind, title) => {
    const g = element('g', { class: `node ${kind}` });
    g.append(element('rect', { x, y, width: 200, height: 30, rx: 6 }));
    g.append(element('text', { x: x + 100, y: y + 19, 'text-anchor': 'middle' }, label));
    if (title) g.append(element('title', {}, title));
    svg.append(g);
  };
  box(160, 5, `root ${short(root)}`, 'root', root);
  for (let level = 0; level < depth; level++) {
    const y = 5 + (level + 1) * rowHeight;
    const right = keyBits[level] === 1;
    const sibling = proof.siblings[level];
    const empty = sibling === '0';
    svg.append(element('text', { x: 4, y: y + 19, class: 'level' }, `d${level + 1} bit ${keyBits[level]}`));
    const pathX = right ? 300 : 60;
    const siblingX = right ? 60 : 300;
    box(pathX, y, level === depth - 1 ? 'leaf side' : 'path', 'path', `path node at depth ${level + 1}`);
    box(siblingX, y, empty ? 'empty (0)' : short(sibling), empty ? 'sibling empty' : 'sibling', sibling);
    svg.append(element('line', { x1: pathX + 100, y1: y, x2: 260, y2: y - rowHeight + 35, class: 'edge' }));
  }
  const bottomY = 5 + (depth + 1) * rowHeight;
  const leafLabel = proof.existence ? 'leaf(key, value)' : proof.node_aux ? `other leaf ${short(proof.node_aux.key)}` : 'empty slot';
  box(160, bottomY, leafLabel, proof.existence ? 'leaf' : 'absent', leafLabel);
  svg.setAttribute('height', String(height));
  container.append(svg);
}
