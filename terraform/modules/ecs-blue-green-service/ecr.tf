# The image repository. Tags are immutable (a version tag always means the same image, and
# cutover deploys by digest anyway), images are scanned on push, and the lifecycle policy
# keeps enough images that every release in cutover's history can still be rolled back to.

resource "aws_ecr_repository" "this" {
  name                 = var.service
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.ecr_kms_key_arn
  }

  tags = local.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name

  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Drop untagged images (build leftovers) after a day"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 1
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.image_retention_count} images (>= cutover history depth ${var.history_depth})"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.image_retention_count
        }
        action = { type = "expire" }
      },
    ]
  })

  lifecycle {
    precondition {
      condition     = var.image_retention_count >= var.history_depth
      error_message = "image_retention_count must be >= history_depth, or ECR could expire an image cutover may roll back to."
    }
  }
}
