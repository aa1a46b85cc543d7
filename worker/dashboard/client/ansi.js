// ANSI colours in log text → <span>s with classes; every character of the log is a text node.
// SGR sequences (ESC [ … m) set colours and weight; every other escape sequence is dropped.

const NAMES = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
// ESC [ params final — CSI; ESC ] … BEL/ST — OSC (titles, links); a lone ESC + one char.
const ESCAPE = /\x1b(?:\[([0-9;?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
// An escape cut by the end of a chunk: held back until the next chunk completes it.
const PARTIAL = /\x1b(?:\[[0-9;?]*|\][^\x07\x1b]*|)$/;

export class AnsiWriter {
  constructor(target) {
    this.target = target;
    this.state = {};
    this.carry = "";
  }

  /** Append a piece of log text (it may end mid-sequence). */
  write(chunk) {
    let text = this.carry + chunk;
    const partial = PARTIAL.exec(text);
    this.carry = partial && partial[0].length < 256 ? partial[0] : "";
    if (this.carry) text = text.slice(0, -this.carry.length);
    const frag = document.createDocumentFragment();
    let at = 0;
    for (const m of text.matchAll(ESCAPE)) {
      this.text(frag, text.slice(at, m.index));
      at = m.index + m[0].length;
      if (m[2] === "m") this.sgr(m[1] ?? "");
    }
    this.text(frag, text.slice(at));
    this.target.append(frag);
  }

  text(frag, s) {
    if (!s) return;
    const st = this.state;
    const classes = [];
    if (st.fg) classes.push(`fg-${st.fg}`);
    if (st.bg) classes.push(`bg-${st.bg}`);
    if (st.bold) classes.push("bold");
    if (st.dim) classes.push("dim");
    if (st.italic) classes.push("italic");
    if (st.underline) classes.push("underline");
    if (!classes.length && !st.fgRgb && !st.bgRgb) return void frag.append(document.createTextNode(s));
    const span = document.createElement("span");
    if (classes.length) span.className = classes.join(" ");
    // CSSOM properties, not a style attribute: the CSP's style-src allows these.
    if (st.fgRgb) span.style.color = st.fgRgb;
    if (st.bgRgb) span.style.backgroundColor = st.bgRgb;
    span.textContent = s;
    frag.append(span);
  }

  sgr(params) {
    const codes = params === "" ? [0] : params.split(";").map((p) => (p === "" ? 0 : Number(p)));
    let st = this.state;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) this.state = st = {};
      else if (c === 1) st.bold = true;
      else if (c === 2) st.dim = true;
      else if (c === 3) st.italic = true;
      else if (c === 4) st.underline = true;
      else if (c === 22) st.bold = st.dim = false;
      else if (c === 23) st.italic = false;
      else if (c === 24) st.underline = false;
      else if (c >= 30 && c <= 37) (st.fg = NAMES[c - 30]), (st.fgRgb = null);
      else if (c >= 90 && c <= 97) (st.fg = `bright-${NAMES[c - 90]}`), (st.fgRgb = null);
      else if (c === 39) st.fg = st.fgRgb = null;
      else if (c >= 40 && c <= 47) (st.bg = NAMES[c - 40]), (st.bgRgb = null);
      else if (c >= 100 && c <= 107) (st.bg = `bright-${NAMES[c - 100]}`), (st.bgRgb = null);
      else if (c === 49) st.bg = st.bgRgb = null;
      else if (c === 38 || c === 48) {
        const [rgb, used] = extended(codes, i + 1);
        i += used;
        if (c === 38) (st.fgRgb = rgb), (st.fg = null);
        else (st.bgRgb = rgb), (st.bg = null);
      }
    }
  }
}

/** 38;5;n or 38;2;r;g;b → an rgb() string (null when malformed) and how many codes it used. */
function extended(codes, i) {
  const clamp = (n) => Math.max(0, Math.min(255, n | 0));
  if (codes[i] === 2) return [`rgb(${clamp(codes[i + 1])}, ${clamp(codes[i + 2])}, ${clamp(codes[i + 3])})`, 4];
  if (codes[i] === 5) return [xterm256(clamp(codes[i + 1])), 2];
  return [null, 0];
}

function xterm256(n) {
  const base = [[0, 0, 0], [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188], [17, 168, 205], [229, 229, 229],
    [102, 102, 102], [241, 76, 76], [35, 209, 139], [245, 245, 67], [59, 142, 234], [214, 112, 214], [41, 184, 219], [255, 255, 255]];
  let rgb;
  if (n < 16) rgb = base[n];
  else if (n < 232) {
    const v = [36, 6, 1].map((d) => Math.floor((n - 16) / d) % 6).map((x) => (x ? 55 + x * 40 : 0));
    rgb = v;
  } else rgb = Array(3).fill(8 + (n - 232) * 10);
  return `rgb(${rgb.join(", ")})`;
}
