// Package e2e drives the hopper dashboard in a real headless Chromium
// (through chromedp). It is a module of its own so that hopper's core never
// depends on a browser driver. It has no code outside its tests.
//
// Run it with Debian's chromium installed:
//
//	cd dashboard/e2e && go test ./...
//
// The test skips when no Chromium is found, unless the CI environment
// variable is set, in which case it fails. HOPPER_TEST_REDIS_ADDR runs it
// on that Redis server instead of an embedded miniredis; HOPPER_CHROMIUM
// names the browser binary; HOPPER_SCREENSHOTS=1 also renders the
// screenshots in docs/img/.
package e2e
