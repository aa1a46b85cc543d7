/**
 * Where sign-in sends the browser afterwards: only a path on this origin (one leading "/"), else "/".
 * Refuses what browsers would read as another host — `//evil`, `/\evil` (a backslash is a slash to
 * them), control characters they strip (`/\t/evil`) — and returns the path re-serialised by URL, so it
 * is plain ASCII, percent-encoded, safe in a `Location` header.
 */
const MAX_NEXT_LENGTH = 2048;
const SIGN_IN_PATHS = new Set(["/login", "/logout"]);

export function safeNextPath(next: string | null | undefined, requestUrl: string): string {
  if (!next || next.length > MAX_NEXT_LENGTH) return "/";
  if (!/^\/(?![/\\])/.test(next) || next.includes("\\") || /[\u0000-\u001f\u007f]/.test(next)) return "/";
  let url: URL;
  let origin: string;
  try {
    origin = new URL(requestUrl).origin;
    url = new URL(next, origin);
  } catch {
    return "/";
  }
  if (url.origin !== origin || SIGN_IN_PATHS.has(url.pathname)) return "/";
  return `${url.pathname}${url.search}${url.hash}`;
}
