# The network a blue/green ECS service lives in: one VPC, a public and a private subnet in
# each of two availability zones, internet egress for the private side through NAT and/or
# VPC endpoints, and flow logs. Tasks only ever run in the private subnets.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  # index → AZ; public subnets take the first two /20s, private the next two.
  zones       = { for i, az in var.availability_zones : tostring(i) => az }
  nat_keys    = var.nat_gateway_enabled ? (var.nat_gateway_per_az ? keys(local.zones) : ["0"]) : []
  tags        = merge(var.tags, { "cutover:network" = var.name })
  nat_for_az  = { for k in keys(local.zones) : k => var.nat_gateway_per_az ? k : "0" }
  endpoints   = var.vpc_endpoints_enabled ? toset(["ecr.api", "ecr.dkr", "logs", "ssm"]) : toset([])
  region_name = data.aws_region.current.region
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true # interface endpoints with private DNS need both
  tags                 = merge(local.tags, { Name = var.name })
}

# The default security group is not used by anything here; strip its rules so nothing
# attached to it by accident gets traffic.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  for_each = local.zones

  vpc_id            = aws_vpc.this.id
  availability_zone = each.value
  cidr_block        = cidrsubnet(var.cidr_block, 4, tonumber(each.key))
  # Only the ALB and NAT gateways live here, and both get their addresses explicitly.
  map_public_ip_on_launch = false
  tags                    = merge(local.tags, { Name = "${var.name}-public-${each.value}", "cutover:tier" = "public" })
}

resource "aws_subnet" "private" {
  for_each = local.zones

  vpc_id            = aws_vpc.this.id
  availability_zone = each.value
  cidr_block        = cidrsubnet(var.cidr_block, 4, tonumber(each.key) + 2)
  tags              = merge(local.tags, { Name = "${var.name}-private-${each.value}", "cutover:tier" = "private" })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  for_each = toset(local.nat_keys)

  domain = "vpc"
  tags   = merge(local.tags, { Name = "${var.name}-nat-${local.zones[each.key]}" })
}

resource "aws_nat_gateway" "this" {
  for_each = toset(local.nat_keys)

  allocation_id = aws_eip.nat[each.key].id
  subnet_id     = aws_subnet.public[each.key].id
  tags          = merge(local.tags, { Name = "${var.name}-${local.zones[each.key]}" })

  depends_on = [aws_internet_gateway.this]
}

# One private route table per AZ, so a per-AZ NAT gateway keeps traffic in its zone.
resource "aws_route_table" "private" {
  for_each = local.zones

  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name}-private-${each.value}" })
}

resource "aws_route" "private_nat" {
  for_each = var.nat_gateway_enabled ? local.zones : {}

  route_table_id         = aws_route_table.private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[local.nat_for_az[each.key]].id
}

resource "aws_route_table_association" "private" {
  for_each = aws_subnet.private

  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[each.key].id
}
