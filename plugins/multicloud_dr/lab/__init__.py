"""The local DR lab: real servers on 127.0.0.1 standing in for AWS, Azure and GCP."""
