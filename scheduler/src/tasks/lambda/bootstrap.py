# Vigil's bootstrap for `python3*` functions: imports the handler the entry point names and calls
# it the way AWS Lambda's Python runtime does, once per request read from Vigil's socket (the
# protocol is described in bootstrap.cjs).
import asyncio
import importlib
import inspect
import json
import os
import socket
import sys
import time
import traceback

END = "\u0001vigil-end"


class Context:
    def __init__(self, fields):
        self.function_name = fields.get("functionName")
        self.function_version = fields.get("functionVersion")
        self.memory_limit_in_mb = fields.get("memoryLimitInMB")
        self.aws_request_id = fields.get("awsRequestId")
        self.invoked_function_arn = fields.get("invokedFunctionArn")
        self.log_group_name = None
        self.log_stream_name = None
        self._deadline = fields.get("deadline", 0)

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline - time.time() * 1000))


def described(error, fallback):
    name = type(error).__name__ if isinstance(error, BaseException) else fallback
    return {"name": name, "message": str(error), "stack": traceback.format_exc()}


def main():
    socket_path, entry_point = sys.argv[1], sys.argv[2]
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(socket_path)
    channel = connection.makefile("rwb")

    def send(message):
        channel.write(json.dumps(message).encode("utf-8") + b"\n")
        channel.flush()

    sys.path.insert(0, os.getcwd())
    module_name, _, function_name = entry_point.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as error:
        send({"error": {"name": "Runtime.ImportModuleError", "message": f"Unable to import module '{module_name}': {error}"}})
        return
    handler = getattr(module, function_name, None)
    if not callable(handler):
        send({"error": {"name": "Runtime.HandlerNotFound", "message": f"Handler '{function_name}' missing on module '{module_name}'"}})
        return
    send({"ready": True})
    for line in channel:
        request = json.loads(line)
        try:
            result = handler(request["event"], Context(request["context"]))
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            answer = {"id": request["id"], "result": result}
            json.dumps(answer)
        except Exception as error:
            answer = {"id": request["id"], "error": described(error, "Exception")}
        sys.stdout.write(f"\n{END} {request['id']}\n")
        sys.stdout.flush()
        sys.stderr.write(f"\n{END} {request['id']}\n")
        sys.stderr.flush()
        send(answer)


main()
