output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "IDs of the two public subnets (for the load balancer)."
  value       = [for s in aws_subnet.public : s.id]
}

output "private_subnet_ids" {
  description = "IDs of the two private subnets (for the ECS tasks)."
  value       = [for s in aws_subnet.private : s.id]
}

output "nat_gateway_public_ips" {
  description = "Public IPs the private subnets egress from (empty without NAT), e.g. to allow-list elsewhere."
  value       = [for e in aws_eip.nat : e.public_ip]
}
