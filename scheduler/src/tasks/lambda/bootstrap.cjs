// Vigil's bootstrap for `nodejs*` functions: loads the handler the entry point names and calls it
// the way AWS Lambda's Node.js runtime does, once per request read from Vigil's socket.
//
// Protocol (JSON lines on the socket given as the first argument): Vigil sends
// `{id, event, context}`; the bootstrap answers `{ready: true}` once the handler is loaded (or
// `{error}` if it cannot be), then `{id, result}` or `{id, error}` per request, after writing the
// end marker `\u0001vigil-end <id>` as a line to stdout and stderr, so that Vigil knows it has
// every log line of the request.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

const [socketPath, entryPoint] = process.argv.slice(2);
const socket = net.createConnection(socketPath);
const send = (message) => socket.write(`${JSON.stringify(message)}\n`);

function described(error, fallbackName) {
  if (error instanceof Error) {
    return { name: error.name || fallbackName, message: String(error.message), stack: error.stack };
  }
  if (error && typeof error === 'object') {
    return { name: String(error.name || fallbackName), message: String(error.message ?? JSON.stringify(error)) };
  }
  return { name: fallbackName, message: String(error) };
}

// Loads the module as Lambda does (`<module>.js`, `.mjs` or `.cjs`; CommonJS or ES module).
async function load() {
  const dot = entryPoint.lastIndexOf('.');
  const base = path.resolve(process.cwd(), entryPoint.slice(0, dot));
  const name = entryPoint.slice(dot + 1);
  const file = ['.js', '.mjs', '.cjs'].map((extension) => base + extension).find(fileExists);
  if (!file) {
    throw { name: 'Runtime.ImportModuleError', message: `Cannot find module '${entryPoint.slice(0, dot)}'` };
  }
  let module;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    throw { name: 'Runtime.ImportModuleError', message: described(error, 'Error').message };
  }
  const handler = typeof module[name] === 'function' ? module[name] : module.default && module.default[name];
  if (typeof handler !== 'function') {
    throw { name: 'Runtime.HandlerNotFound', message: `${entryPoint} is undefined or not exported` };
  }
  return handler;
}

function fileExists(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// Calls the handler as Lambda does: an async handler's promise, or the callback, gives the result;
// a handler that takes no callback and returns a plain value gives that value.
function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (error, result) => {
      if (settled) return;
      settled = true;
      if (error !== undefined && error !== null) reject(error);
      else resolve(result);
    };
    context.done = callback;
    context.succeed = (result) => callback(null, result);
    context.fail = (error) => callback(error ?? new Error('failed'));
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === 'function') {
        returned.then((result) => callback(null, result), (error) => callback(error ?? new Error('rejected')));
      } else if (handler.length < 3) {
        callback(null, returned);
      }
    } catch (error) {
      callback(error);
    }
  });
}

const END = '\u0001vigil-end';

async function serve(handler, request) {
  const deadline = request.context.deadline;
  const context = {
    ...request.context,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  let answer;
  try {
    const result = await invoke(handler, request.event, context);
    answer = { id: request.id, result: result === undefined ? null : result };
    JSON.stringify(answer);
  } catch (error) {
    answer = { id: request.id, error: described(error, 'Error') };
  }
  process.stdout.write(`\n${END} ${request.id}\n`);
  process.stderr.write(`\n${END} ${request.id}\n`);
  send(answer);
}

socket.on('connect', async () => {
  let handler;
  try {
    handler = await load();
  } catch (error) {
    send({ error: described(error, 'Runtime.ImportModuleError') });
    socket.end();
    return;
  }
  send({ ready: true });
  let buffered = '';
  let queue = Promise.resolve();
  socket.on('data', (chunk) => {
    buffered += chunk.toString('utf8');
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const request = JSON.parse(line);
      queue = queue.then(() => serve(handler, request));
    }
  });
});
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(1));
// A rejection or exception nobody awaited would end the process in Lambda too; here it is logged.
process.on('unhandledRejection', (reason) => console.error('Unhandled rejection', reason));
