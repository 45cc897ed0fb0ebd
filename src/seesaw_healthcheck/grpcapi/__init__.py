"""The gRPC API (``proto/seesaw/healthcheck/v1/healthcheck.proto``).

``healthcheck_pb2`` and ``healthcheck_pb2_grpc`` (with their ``.pyi`` stubs) are generated
by ``scripts/gen_proto.py`` (``make proto``) and checked in; never edit them. ``convert``
maps the API's messages to the domain model (``seesaw_healthcheck.model``) and back.
"""
