"""The retrain workflow on the embedded AWS: the template's state machine, run by moto's Step
Functions interpreter (``machine``), made to behave as Step Functions does where moto's
interpreter differs (``interpreter``). Its Lambda tasks call the functions the embedded Lambda
service runs (``local.aws.lambda_service``)."""
