"""The S3-compatible document store (AWS S3, MinIO, Ceph, …) through boto3."""
