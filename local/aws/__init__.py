"""The embedded AWS: moto in this process, the template's resources on it, and what moto lacks.

``template`` reads template.yaml; ``embedded`` starts moto's server and provisions the bucket,
tables and secret; ``lambda_runtime`` runs the functions' handlers (threads, sandbox processes,
timeouts); ``lambda_service`` puts the template's functions and queues on moto's Lambda and SQS
(invoke, Lambda's asynchronous contract from ``lambda_async``, event source mappings); ``iam``,
``policy``, ``enforcement`` and ``iam_calls`` make moto hold each function to its grants and record
what it used; ``faults`` makes a share of the calls fail as AWS does under load.
"""
