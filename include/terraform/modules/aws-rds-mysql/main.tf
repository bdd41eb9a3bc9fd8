data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  log_types = ["error", "slowquery", "audit"]
}

# --- KMS: storage, Performance Insights, exported logs ----------------------------------------

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:A KMS key policy must grant the account root kms:*; access is then governed by IAM.
  # checkov:skip=CKV_AWS_111:Same: "*" in a key policy means "this key", not every resource.
  # checkov:skip=CKV_AWS_356:Same: "*" in a key policy means "this key", not every resource.
  statement {
    sid       = "AccountAdministersKey"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsUseKey"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:/aws/rds/instance/${var.identifier}/*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.identifier} RDS storage, Performance Insights and logs"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms.json

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.identifier}"
  target_key_id = aws_kms_key.this.key_id
}

# Made before the instance so that RDS does not create them unencrypted and kept forever.
resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(local.log_types)

  name              = "/aws/rds/instance/${var.identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn

  tags = var.tags
}

# --- Network ----------------------------------------------------------------------------------

resource "aws_db_subnet_group" "this" {
  name        = var.identifier
  description = "Isolated database subnets of ${var.identifier}"
  subnet_ids  = var.db_subnet_ids

  tags = var.tags
}

# Only the app tier (and, for replication, the DR range over the VPN) may connect. No egress
# rule: Terraform removes the default allow-all egress of a new security group.
resource "aws_security_group" "this" {
  name        = "${var.identifier}-mysql"
  description = "MySQL ${var.identifier}: admits the app subnets only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.identifier}-mysql" })
}

resource "aws_vpc_security_group_ingress_rule" "mysql" {
  for_each = toset(var.allowed_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "MySQL from ${each.key}"
  ip_protocol       = "tcp"
  from_port         = 3306
  to_port           = 3306
  cidr_ipv4         = each.key

  tags = var.tags
}

# --- Parameters: row-based binlog for CDC (DMS) and consistent dumps -------------------------

resource "aws_db_parameter_group" "this" {
  name        = var.identifier
  family      = var.parameter_group_family
  description = "${var.identifier}: row-based binlog, GTIDs, TLS only"

  # DMS and the heartbeat-based lag checks need full row images.
  parameter {
    name  = "binlog_format"
    value = "ROW"
  }

  parameter {
    name  = "binlog_row_image"
    value = "FULL"
  }

  # DMS before 3.5 cannot read checksummed binlog events.
  parameter {
    name  = "binlog_checksum"
    value = "NONE"
  }

  # GTIDs: the backup manifest records the GTID set, and a replica can resume by GTID.
  parameter {
    name         = "gtid-mode"
    value        = "ON"
    apply_method = "pending-reboot"
  }

  parameter {
    name         = "enforce_gtid_consistency"
    value        = "ON"
    apply_method = "pending-reboot"
  }

  parameter {
    name  = "require_secure_transport"
    value = "1"
  }

  parameter {
    name  = "slow_query_log"
    value = "1"
  }

  parameter {
    name  = "long_query_time"
    value = "2"
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# Binlog retention is not a parameter on RDS: the replication DAG runs
# CALL mysql.rds_set_configuration('binlog retention hours', 24) so that CDC can resume after an
# outage of up to a day (see README).

resource "aws_db_option_group" "this" {
  name                     = var.identifier
  option_group_description = "${var.identifier}: MariaDB audit plugin"
  engine_name              = "mysql"
  major_engine_version     = var.engine_version

  option {
    option_name = "MARIADB_AUDIT_PLUGIN"

    option_settings {
      name  = "SERVER_AUDIT_EVENTS"
      value = "CONNECT,QUERY_DDL,QUERY_DCL"
    }
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# --- Enhanced monitoring ---------------------------------------------------------------------

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count = var.monitoring_interval_seconds > 0 ? 1 : 0

  name               = "${var.identifier}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count = var.monitoring_interval_seconds > 0 ? 1 : 0

  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# --- The instance ----------------------------------------------------------------------------

resource "aws_db_instance" "this" {
  identifier     = var.identifier
  engine         = "mysql"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = var.database_name

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb > 0 ? var.max_allocated_storage_gb : null
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  username                      = var.master_username
  manage_master_user_password   = var.manage_master_user_password ? true : null
  master_user_secret_kms_key_id = var.manage_master_user_password ? aws_kms_key.this.arn : null
  password                      = var.manage_master_user_password ? null : var.master_password

  iam_database_authentication_enabled = true

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  port                   = 3306

  parameter_group_name = aws_db_parameter_group.this.name
  option_group_name    = aws_db_option_group.this.name

  backup_retention_period   = var.backup_retention_days
  backup_window             = var.backup_window
  maintenance_window        = var.maintenance_window
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = var.skip_final_snapshot ? null : "${var.identifier}-final"

  auto_minor_version_upgrade = true
  apply_immediately          = false

  enabled_cloudwatch_logs_exports       = local.log_types
  monitoring_interval                   = var.monitoring_interval_seconds
  monitoring_role_arn                   = var.monitoring_interval_seconds > 0 ? aws_iam_role.monitoring[0].arn : null
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = 7

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.this]

  lifecycle {
    precondition {
      condition     = var.manage_master_user_password || var.master_password != null
      error_message = "Set manage_master_user_password = true, or pass master_password (TF_VAR_master_password)."
    }
  }
}
