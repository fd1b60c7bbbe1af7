// Debian's librdkafka-dev (2.0.x): the client API and the in-process mock cluster.
// Imported by EddyKafka alone (../../shared/DESIGN.md, "Modules").
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
