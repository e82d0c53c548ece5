# Private paths to the AWS APIs a Fargate task needs before the app even starts: ECR to
# pull the image (api + dkr, and S3 where the layers live), CloudWatch Logs for the awslogs
# driver, SSM for parameters in the task definition.

resource "aws_security_group" "endpoints" {
  count = var.vpc_endpoints_enabled ? 1 : 0

  name        = "${var.name}-endpoints"
  description = "HTTPS from the private subnets to the interface VPC endpoints"
  vpc_id      = aws_vpc.this.id
  tags        = merge(local.tags, { Name = "${var.name}-endpoints" })
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  for_each = var.vpc_endpoints_enabled ? aws_subnet.private : {}

  security_group_id = aws_security_group.endpoints[0].id
  description       = "HTTPS from private subnet ${each.value.availability_zone}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value.cidr_block
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.endpoints

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${local.region_name}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [for s in aws_subnet.private : s.id]
  security_group_ids  = [aws_security_group.endpoints[0].id]
  tags                = merge(local.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_vpc_endpoint" "s3" {
  count = var.vpc_endpoints_enabled ? 1 : 0

  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${local.region_name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [for rt in aws_route_table.private : rt.id]
  tags              = merge(local.tags, { Name = "${var.name}-s3" })
}
