output "role_arn" {
  description = "ARN of the backup role (the AWS connection of the backup DAG assumes it)."
  value       = aws_iam_role.backup.arn
}

output "role_name" {
  description = "Name of the backup role."
  value       = aws_iam_role.backup.name
}

output "policy_arn" {
  description = "ARN of the least-privilege backup policy."
  value       = aws_iam_policy.backup.arn
}
