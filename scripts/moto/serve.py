"""moto's server mode, one request at a time.

DynamoDB applies each conditional write to an item atomically, which is
what makes two members' claims of one record exclusive. moto's threaded
server does not: two requests may check the same condition at once and
both write. This runs moto's own WSGI application (as moto_server does)
behind one lock, so that every request is applied whole before the next,
as DynamoDB guarantees per item. Usage: serve.py HOST PORT
"""
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            # The body is produced here, under the lock, not while the
            # server writes it out.
            return list(app(environ, start_response))

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
