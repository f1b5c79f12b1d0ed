//go:build !unix

package server

import "errors"

func getFileLimit() (fileLimit, error) { return fileLimit{}, errors.ErrUnsupported }

func setFileLimit(fileLimit) error { return errors.ErrUnsupported }
