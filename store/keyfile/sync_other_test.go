//go:build !unix

package keyfile_test

func syncAll() {}
