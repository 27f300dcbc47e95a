// The Vigil server under test, as the harness (tests/tests/it/sdk.rs) describes it in the
// environment, and SDK clients for it.
import { createOAuth2Client } from '@extrahorizon/javascript-sdk';

export const host = process.env.VIGIL_URL;
export const adminEmail = process.env.VIGIL_ADMIN_EMAIL;
export const adminPassword = process.env.VIGIL_ADMIN_PASSWORD;

/** An OAuth2 client of the bootstrapped application, not logged in. */
export function client(options = {}) {
  return createOAuth2Client({
    host,
    clientId: process.env.VIGIL_CLIENT_ID,
    clientSecret: process.env.VIGIL_CLIENT_SECRET,
    ...options,
  });
}

/** A client logged in with the password grant. */
export async function loggedIn(username, password) {
  const exh = client();
  await exh.auth.authenticate({ username, password });
  return exh;
}
