"""Publish web/ to a deployed stack: the files to its WebBucket, the page pointed at its
API, and CloudFront told to drop its cached copies.

Usage: python -m local.deploy_web --stack crimecast-dev   (AWS credentials from the environment)
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path
import re
import sys
import time
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web"
API_BASE_META = re.compile(r'(<meta name="crimecast-api-base" content=")[^"]*(")')


def stack_outputs(stack: str) -> dict[str, str]:
    import boto3

    described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def upload(s3: Any, bucket: str, api_url: str, web: Path = WEB) -> list[str]:
    """Every file of ``web`` to ``bucket``; index.html names the API it talks to."""
    uploaded = []
    for path in sorted(p for p in web.rglob("*") if p.is_file()):
        key = path.relative_to(web).as_posix()
        body = path.read_bytes()
        if key == "index.html":
            body = API_BASE_META.sub(lambda m: m.group(1) + api_url.rstrip("/") + m.group(2), body.decode()).encode()
        cache = "no-cache" if key == "index.html" else "public, max-age=300"
        s3.put_object(Bucket=bucket, Key=key, Body=body, CacheControl=cache,
                      ContentType=mimetypes.guess_type(key)[0] or "application/octet-stream")
        uploaded.append(key)
    return uploaded


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="python -m local.deploy_web", description=__doc__)
    parser.add_argument("--stack", required=True, help="the CloudFormation stack name, e.g. crimecast-dev")
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack)
    files = upload(boto3.client("s3"), outputs["WebBucketName"], outputs["ApiUrl"])
    distribution = outputs["WebSiteUrl"].split("//", 1)[1].rstrip("/")
    cloudfront = boto3.client("cloudfront")
    for summary in cloudfront.list_distributions()["DistributionList"].get("Items", []):
        if summary["DomainName"] == distribution:
            cloudfront.create_invalidation(DistributionId=summary["Id"], InvalidationBatch={
                "Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time())})
    print(f"uploaded {len(files)} files; the UI is at {outputs['WebSiteUrl']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
