module github.com/qxbridge/qxbridge

go 1.26.8

require (
	github.com/nlpodyssey/gopickle v0.3.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
