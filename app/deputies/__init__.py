"""The deputies registry: regions, their legislatures and deputies, and the CSV importer."""
