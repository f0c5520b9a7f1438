from __future__ import annotations

import boto3

from local.deploy_web import upload


def test_web_files_are_uploaded_with_the_api_url(aws, tmp_path) -> None:
    (tmp_path / "index.html").write_text('<head><meta name="crimecast-api-base" content=""></head>')
    (tmp_path / "app.js").write_text("export {}")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="web")
    assert upload(s3, "web", "https://abc.execute-api.us-east-1.amazonaws.com/prod/", tmp_path) == ["app.js", "index.html"]
    page = s3.get_object(Bucket="web", Key="index.html")
    assert b'content="https://abc.execute-api.us-east-1.amazonaws.com/prod"' in page["Body"].read()
    assert page["ContentType"] == "text/html" and page["CacheControl"] == "no-cache"
    assert s3.get_object(Bucket="web", Key="app.js")["ContentType"] in ("text/javascript", "application/javascript")
