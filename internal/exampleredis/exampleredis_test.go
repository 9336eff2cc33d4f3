package exampleredis

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConnect(t *testing.T) {
	c, closeAll, err := Connect("")
	require.NoError(t, err)
	require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err(), "an embedded Redis")
	closeAll()
	_, _, err = Connect("http://nope")
	require.Error(t, err)
}
