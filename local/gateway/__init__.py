"""API Gateway, played locally: the template's REST API (``api``: its routes and the proxy event),
its TOKEN authorizer (``authorizer``), and the HTTP server that answers on the stack's port
(``server``: a table of what it answers, the web page's files from ``static``)."""
