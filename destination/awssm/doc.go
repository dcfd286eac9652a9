// Package awssm is AWS Secrets Manager as a destination of a sync.
package awssm
