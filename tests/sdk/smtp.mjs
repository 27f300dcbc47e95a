// A real SMTP server on loopback for the suite: it speaks the protocol over TCP and keeps every
// message it receives, so a test can read the code Vigil mailed.
import net from 'node:net';

export function smtpServer(port) {
  const received = [];
  const waiting = [];

  function deliver(mail) {
    const index = waiting.findIndex((w) => mail.to.includes(w.address));
    if (index >= 0) {
      waiting.splice(index, 1)[0].resolve(mail);
    } else {
      received.push(mail);
    }
  }

  const server = net.createServer((socket) => {
    socket.setEncoding('utf8');
    socket.write('220 vigil-sdk-test ESMTP\r\n');
    let buffer = '';
    let data = null;
    let to = [];
    socket.on('data', (chunk) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data !== null) {
          if (line === '.') {
            deliver({ to, data });
            [data, to] = [null, []];
            socket.write('250 OK queued\r\n');
          } else {
            data += `${line.startsWith('.') ? line.slice(1) : line}\r\n`;
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') socket.write('250-vigil-sdk-test\r\n250 8BITMIME\r\n');
        else if (verb === 'RCPT') {
          to.push(line.slice(line.indexOf(':') + 1).trim().replace(/[<>]/g, ''));
          socket.write('250 OK\r\n');
        } else if (verb === 'DATA') {
          data = '';
          socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
        } else if (verb === 'QUIT') socket.end('221 Bye\r\n');
        else if (verb === 'MAIL' || verb === 'RSET' || verb === 'NOOP') socket.write('250 OK\r\n');
        else socket.write('502 Command not implemented\r\n');
      }
    });
  });

  return {
    listen: () => new Promise((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () => new Promise((resolve) => server.close(resolve)),
    // The next mail to `address` (waits for it).
    next(address, timeoutMs = 20000) {
      const index = received.findIndex((mail) => mail.to.includes(address));
      if (index >= 0) return Promise.resolve(received.splice(index, 1)[0]);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no mail to ${address}`)), timeoutMs);
        waiting.push({ address, resolve: (mail) => { clearTimeout(timer); resolve(mail); } });
      });
    },
  };
}

// The 40-hex-digit code in a mail (quoted-printable soft breaks undone).
export function codeIn(mail) {
  const match = mail.data.replace(/=\r\n/g, '').match(/(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])/);
  if (!match) throw new Error(`no code in the mail:\n${mail.data}`);
  return match[0];
}

// The 8-digit pin code in a mail's body.
export function pinIn(mail) {
  const body = mail.data.replace(/=\r\n/g, '').split('\r\n\r\n').slice(1).join('\r\n\r\n');
  const match = body.match(/(?<![0-9])[0-9]{8}(?![0-9])/);
  if (!match) throw new Error(`no pin code in the mail:\n${mail.data}`);
  return match[0];
}
