/** The token of an `Authorization: Bearer <token>` header (admin API, agent sockets), or null. */
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export function bearerToken(header: string | undefined | null): string | null {
  return BEARER.exec(header ?? "")?.[1] ?? null;
}
