"""The NHS App's Wayfinder API (the Patient Care Aggregator's producer API standard): FHIR R4 under /fhir/r4."""
