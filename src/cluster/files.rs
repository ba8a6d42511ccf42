//! Reading an inventory from files: a manifest file, a folder, or a Harvester support bundle.
