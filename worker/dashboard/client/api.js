// The admin API, same origin: the browser sends the HttpOnly session cookie; the client never sees a token.

export class SignedOut extends Error {}

export async function apiGet(path, signal) {
  return answer(await fetch(`/api${path}`, { headers: { accept: "application/json" }, credentials: "same-origin", signal }));
}

/** A state-changing call: fetch sends this origin's Origin header, which the API's CSRF check wants. */
export async function apiPost(path, body) {
  return answer(
    await fetch(`/api${path}`, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body ?? {}),
    }),
  );
}

async function answer(res) {
  if (res.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new SignedOut("signed out");
  }
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new Error(body && typeof body.error === "string" ? body.error : `${res.status} ${text.slice(0, 200)}`);
  return body;
}
