"""The central console: a REST API under /api/ and a web page at /, over the central database.

`create_app` (app.py) builds the FastAPI application; importing this package
pulls in nothing heavy, so the command line can reach the account helpers
without loading FastAPI.
"""
