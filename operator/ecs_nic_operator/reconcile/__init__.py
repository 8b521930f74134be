"""The decisions of the operator, free of kopf and HTTP so they can be tested with plain values."""
