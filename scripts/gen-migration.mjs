#!/usr/bin/env node
// Developer tool: prints the full schema the datamodel implies (after `npm run build`).
// The first migration was written with it; a later datamodel change gets a new
// numbered migration that brings an existing database to the same shape, and
// test/db/schema.test checks that the migrations and the datamodel agree.
import { fullSchemaSql } from '../dist/src/db/schema.js';
process.stdout.write(fullSchemaSql());
