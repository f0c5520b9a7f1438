"""The one-machine stack: what runs the service locally without AWS.

Rooms, each importing only those below it (pyproject.toml's import contracts):

- ``stack`` wires the rest (``python -m local.stack``, ``make demo``); beside it, ``replay``
  drives a replaying stack month by month and ``deploy_web`` publishes the page to AWS;
- ``gateway`` plays API Gateway (routes, the authorizer, the web page's files), ``workflow``
  the retrain state machine on moto's Step Functions, ``portal`` the city's data portal
  (``python -m local.portal``), ``model_cache`` the models kept between starts;
- ``aws`` is the embedded AWS: moto, the template's resources, the functions' runtime, IAM,
  faults;
- ``console`` and ``http_headers``: what every room may use.
"""
