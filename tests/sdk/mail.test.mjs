// Activation and password reset by mail through the unmodified Extra Horizon SDK, with the mails
// received on a real SMTP server (./smtp.mjs) that Vigil is configured to send to.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActivationUnknownError,
  ForgotPasswordRequestTimeoutError,
  IllegalStateError,
  IncorrectPinCodeError,
  InvalidGrantError,
  PinCodesNotEnabledError,
  RefreshTokenUnknownError,
  TooManyFailedAttemptsError,
} from '@extrahorizon/javascript-sdk';
import { codeIn, pinIn, smtpServer } from './smtp.mjs';
import { adminEmail, adminPassword, client, loggedIn } from './vigil.mjs';

const smtp = smtpServer(Number(process.env.VIGIL_TEST_SMTP_PORT));

before(() => smtp.listen());
after(() => smtp.close());

test('register, activate with the mailed code, reset the password with the mailed code', async () => {
  const address = 'mailed@example.com';
  const anonymous = client();
  const user = await anonymous.users.createAccount({
    firstName: 'Mai', lastName: 'Led', email: address, password: 'first password', language: 'EN',
  });
  assert.equal(user.activation, false);
  const activation = await smtp.next(address);
  assert.match(activation.data, /Activate your account/);

  const mai = await loggedIn(address, 'first password');
  await assert.rejects(mai.users.validateEmailActivation({ hash: '0'.repeat(40) }), ActivationUnknownError);
  assert.equal(await mai.users.validateEmailActivation({ hash: codeIn(activation) }), true);
  assert.equal((await mai.users.me()).activation, true);

  assert.equal(await anonymous.users.requestPasswordReset(address), true);
  const reset = await smtp.next(address);
  assert.match(reset.data, /Reset your password/);
  assert.equal(await mai.users.validatePasswordReset({ hash: codeIn(reset), newPassword: 'second password' }), true);
  // Every login ended with the reset: the SDK's refresh attempt fails too.
  await assert.rejects(mai.users.me(), (error) => {
    assert.ok(error instanceof InvalidGrantError, error.constructor.name);
    assert.ok(error.exhError instanceof RefreshTokenUnknownError, error.exhError?.constructor.name);
    return true;
  });
  const again = await loggedIn(address, 'second password');
  assert.equal((await again.users.me()).id, user.id);
});

test('pin codes, once enabled: activation, a reset spent by wrong pins, cleared by an administrator', async () => {
  const address = 'pinned@example.com';
  const anonymous = client();
  const account = {
    firstName: 'Pin', lastName: 'Ned', email: address, password: 'first password', language: 'EN', activationMode: 'pin_code',
  };
  await assert.rejects(anonymous.users.createAccount(account), PinCodesNotEnabledError);

  const admin = await loggedIn(adminEmail, adminPassword);
  const settings = await admin.users.settings.updateVerificationSettings({
    enablePinCodeActivationRequests: true, enablePinCodeForgotPasswordRequests: true,
  });
  assert.deepEqual(settings, {
    enablePinCodeActivationRequests: true,
    enablePinCodeForgotPasswordRequests: true,
    limitHashActivationRequests: true,
    limitHashForgotPasswordRequests: true,
  });
  try {
    const user = await anonymous.users.createAccount(account);
    const activationPin = pinIn(await smtp.next(address));
    const [activation] = (await admin.users.activationRequests.find()).data.filter((r) => r.userId === user.id);
    assert.equal(activation.mode, 'pin_code');
    assert.equal(activation.requestCount, 1);
    assert.ok(activation.expiryTimestamp instanceof Date);
    const wrong = (pin) => (pin === '00000000' ? '11111111' : '00000000');
    await assert.rejects(
      anonymous.users.validateEmailActivation({ email: address, pinCode: wrong(activationPin) }),
      IncorrectPinCodeError,
    );
    assert.equal(await anonymous.users.validateEmailActivation({ email: address, pinCode: activationPin }), true);
    assert.equal((await admin.users.activationRequests.find()).data.some((r) => r.userId === user.id), false);

    assert.equal(await anonymous.users.requestPasswordReset({ email: address, mode: 'pin_code' }), true);
    const resetPin = pinIn(await smtp.next(address));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await assert.rejects(
        anonymous.users.validatePasswordReset({ email: address, pinCode: wrong(resetPin), newPassword: 'second password' }),
        IncorrectPinCodeError,
      );
    }
    await assert.rejects(
      anonymous.users.validatePasswordReset({ email: address, pinCode: resetPin, newPassword: 'second password' }),
      TooManyFailedAttemptsError,
    );
    await assert.rejects(
      anonymous.users.requestPasswordReset({ email: address, mode: 'pin_code' }),
      ForgotPasswordRequestTimeoutError,
    );
    const request = await admin.users.forgotPasswordRequests.findByUserId(user.id);
    assert.equal(request.failedAttempts, 3);
    assert.deepEqual(await admin.users.forgotPasswordRequests.remove(request.id), { affectedRecords: 1 });

    assert.equal(await anonymous.users.requestPasswordReset({ email: address, mode: 'pin_code' }), true);
    const pin = pinIn(await smtp.next(address));
    assert.equal(await anonymous.users.validatePasswordReset({ email: address, pinCode: pin, newPassword: 'second password' }), true);
    const pinned = await loggedIn(address, 'second password');
    assert.equal((await pinned.users.me()).id, user.id);
  } finally {
    await admin.users.settings.updateVerificationSettings({
      enablePinCodeActivationRequests: false, enablePinCodeForgotPasswordRequests: false,
    });
  }
});

test('email templates are configured per mail; a configured one is never replaced by the built-in mail', async () => {
  const admin = await loggedIn(adminEmail, adminPassword);
  assert.deepEqual(await admin.users.setEmailTemplates({ activationEmailTemplateName: 'welcome' }), {
    activationEmailTemplateName: 'welcome',
  });
  assert.deepEqual(await admin.users.getEmailTemplates(), { activationEmailTemplateName: 'welcome' });
  try {
    await assert.rejects(
      client().users.createAccount({
        firstName: 'Tem', lastName: 'Plate', email: 'templated@example.com', password: 'first password', language: 'EN',
      }),
      IllegalStateError,
    );
  } finally {
    assert.deepEqual(await admin.users.setEmailTemplates({ activationEmailTemplateName: null }), {});
  }
});
