data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  bucket_arn = "arn:${local.partition}:s3:::${var.backup_bucket_name}"
}

data "aws_iam_policy_document" "assume" {
  # EKS Pod Identity: the agent on the node assumes the role for the associated service account.
  statement {
    sid     = "EksPodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = length(var.trusted_role_arns) > 0 ? [1] : []

    content {
      sid     = "TrustedRoles"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = var.trusted_role_arns
      }
    }
  }
}

# Least privilege: list the backup prefix, write, read back (verification), delete (retention),
# and abort multipart uploads; nothing outside the prefix, no bucket configuration.
data "aws_iam_policy_document" "backup" {
  statement {
    sid       = "ListBackupPrefix"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.backup_prefix, "${var.backup_prefix}*"]
    }
  }

  statement {
    sid = "ReadWriteBackupObjects"
    actions = [
      "s3:PutObject",
      "s3:GetObject",
      "s3:GetObjectAttributes",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.bucket_arn}/${var.backup_prefix}*"]
  }

  dynamic "statement" {
    for_each = var.backup_bucket_kms_key_arn == null ? [] : [var.backup_bucket_kms_key_arn]

    content {
      sid       = "UseBucketKey"
      actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = length(var.database_secret_arns) > 0 ? [1] : []

    content {
      sid       = "ReadDatabaseSecret"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = var.database_secret_arns
    }
  }
}

resource "aws_iam_role" "backup" {
  name                 = "${var.name}-backup"
  description          = "Nightly MySQL backup job: writes ${var.backup_prefix} in ${var.backup_bucket_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 14400

  tags = var.tags
}

resource "aws_iam_policy" "backup" {
  name        = "${var.name}-backup"
  description = "Least privilege for the backup job on s3://${var.backup_bucket_name}/${var.backup_prefix}"
  policy      = data.aws_iam_policy_document.backup.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "backup" {
  role       = aws_iam_role.backup.name
  policy_arn = aws_iam_policy.backup.arn
}

resource "aws_eks_pod_identity_association" "backup" {
  count = var.eks_cluster_name == null ? 0 : 1

  cluster_name    = var.eks_cluster_name
  namespace       = var.kubernetes_namespace
  service_account = var.kubernetes_service_account
  role_arn        = aws_iam_role.backup.arn

  tags = var.tags
}
