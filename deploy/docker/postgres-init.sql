-- One login role and one database per service, so that each service reaches only its own data.
-- The postgres image runs this file once, when its data directory is empty. psql reads each
-- password from the container's environment, which docker-compose.yml sets. \getenv needs
-- psql 15 or later.

\set ON_ERROR_STOP on

\getenv goals_password GOALS_DB_PASSWORD
\getenv social_password SOCIAL_DB_PASSWORD
\getenv scoring_password SCORING_DB_PASSWORD
\getenv notifications_password NOTIFICATIONS_DB_PASSWORD

CREATE ROLE goals LOGIN PASSWORD :'goals_password';
CREATE ROLE social LOGIN PASSWORD :'social_password';
CREATE ROLE scoring LOGIN PASSWORD :'scoring_password';
CREATE ROLE notifications LOGIN PASSWORD :'notifications_password';

-- Each role owns its database, and PostgreSQL 15 and later give the public schema to the
-- database owner. So the services can create their event store and read-model tables there.
CREATE DATABASE goals OWNER goals;
CREATE DATABASE social OWNER social;
CREATE DATABASE scoring OWNER scoring;
CREATE DATABASE notifications OWNER notifications;

REVOKE ALL ON DATABASE goals, social, scoring, notifications FROM PUBLIC;
