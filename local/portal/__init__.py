"""A stand-in for the City of Chicago's data portal, over real rows, with faults on demand.

It answers the part of Socrata's SODA API that crimecast's client uses:

* ``GET /resource/ijzp-q8t2.json`` with ``$select`` (columns, ``date_trunc_ym(col)``,
  ``date_trunc_y(col)``, ``count(*)``, each with an optional ``AS alias``), ``$where``
  (comparisons with quoted literals joined by ``AND``), ``$group``, ``$order`` (``ASC`` /
  ``DESC``; without it the rows come in a new random order each time, as "undefined"
  means), ``$limit`` (default 1000, at most 50,000) and ``$offset``. Values are strings
  except booleans, and keys with null values are left out, as the real API does.
* ``GET /resource/igwz-8jzy.geojson``: the community area boundaries.
* SODA 3: ``POST /api/v3/views/ijzp-q8t2/query.json`` with a JSON body ``{"query": "SELECT ...
  WHERE ... GROUP BY ... ORDER BY ... [LIMIT n] [OFFSET n]", "page": {"pageNumber": 1,
  "pageSize": 1000}, "includeSynthetic": false}``: the same SoQL, the same answer (a JSON
  array of row objects). Like the real portal it refuses a request without ``X-App-Token``
  (403). ``POST /__control/soda3`` ``{"enabled": false}`` makes it a portal without SODA 3
  (404 on that path), as one that has not moved yet.

The rows are real (``CRIMECAST_DATA_DIR``, default ``../shared/data``): the 215,551
incidents of ``crimes_2022_jan_nov_slim.csv.gz`` (``--dataset csv``, optionally copied
into earlier years with ``--replicate-years``), or the 1,000 rows of
``raw_api_sample.json`` exactly as the API returned them (``--dataset api-sample``).
Any folder with those file names will do (``--data-dir``, ``StandInPortal(dataset, folder)``):
the tests use ``tests/fixtures``, three areas of the 2022 rows, where ../shared/data is absent.

Faults and changes on demand, from Python (:class:`StandInPortal`) or over HTTP:

* ``POST /__control/fault`` ``{"kind": "429"|"500"|"503"|"slow"|"truncate"|"garbage"|"reset",
  "times": 1 (-1: until reset), "retry_after": 1, "delay": 2.0, "match": "substring of the query"}``
* ``POST /__control/revise`` ``{"id": "...", "primary_type": "...", "date": "2022-05-02T10:00:00"}``:
  a record revised after publication (reclassified, re-dated).
* ``POST /__control/now`` ``{"now": "2022-11-20T00:00:00"}``: the portal's clock; the last
  7 days before it are withheld, as the real portal withholds them.
* ``POST /__control/reset``; ``GET /__control/log`` (the requests seen).

``python -m local.portal --port 8089`` serves it; point crimecast at it with
``CRIMECAST_SOCRATA_URL=http://127.0.0.1:8089``.

**Replay** (``--replay-from YYYY-MM``, ``StandInPortal("replay", ..., replay_from="2016-10")``):
the city as it was at the end of that month. The rows come from any tidy counts files
(``--replay-data FILE``, repeatable; :func:`load_replay_files` says how files of totals only
are served), by default from
``area_type_monthly_2001_2018.csv.gz`` (every area x type, monthly, 2001-01..2018-10; area 0,
unplaced reports, is served with no ``community_area``; the two rows a cell may have, one
per ``area_source``, are summed), optionally cut to a few areas (``--areas 8,25,32``; area 0
is then left out unless listed) and types (``--types``). Each cell is one weighted row dated
the 1st of its month, so aggregations (``count(*)``) add the weights, and a plain row query
returns that many incidents, each dated the 1st (a ``$where`` on ``date`` should fall on
month starts, as the ingest's do). Only the months up to the portal's "today" are served:

* ``POST /__control/advance`` ``{"months": 1}`` moves "today" on (409 past the data's last
  month); ``GET /__control/replay`` tells today and the last month;
* ``python -m local.portal advance [--url http://127.0.0.1:8089] [--months 1]`` does the same
  from a shell.
"""
