package main

import (
	"errors"
	"fmt"

	"github.com/provlog/provlog/log/ledger"
)

// storageConfig checks the storage flags and returns the aws storage's
// settings, or nil for the embedded posix storage.
func storageConfig(cfg config) (*ledger.AWSConfig, error) {
	switch cfg.Storage {
	case "posix":
		if cfg.MySQLDSN != "" || cfg.S3Endpoint != "" || cfg.S3Bucket != "" {
			return nil, errors.New("--mysql-dsn, --s3-endpoint and --s3-bucket need --storage aws")
		}
		return nil, nil
	case "aws":
		if cfg.MySQLDSN == "" {
			return nil, errors.New("--storage aws needs --mysql-dsn")
		}
		if cfg.S3Bucket == "" {
			return nil, errors.New("--storage aws needs --s3-bucket")
		}
		if cfg.CheckpointInterval < ledger.AWSMinCheckpointInterval {
			return nil, fmt.Errorf("--checkpoint-interval %v: --storage aws needs at least %v", cfg.CheckpointInterval, ledger.AWSMinCheckpointInterval)
		}
		return &ledger.AWSConfig{DSN: cfg.MySQLDSN, Endpoint: cfg.S3Endpoint, Bucket: cfg.S3Bucket}, nil
	}
	return nil, fmt.Errorf("--storage %q: want posix or aws", cfg.Storage)
}
