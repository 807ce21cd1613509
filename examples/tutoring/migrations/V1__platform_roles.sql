-- What a Supabase project starts with, made here so the example runs on a bare
-- PostgreSQL (names prefixed tutoring_ so they cannot clash with other
-- databases on the same server; on Supabase they are anon, authenticated,
-- service_role and authenticator). PostgREST logs in as the authenticator and,
-- per request, switches to anon (no JWT) or authenticated (a signed-in user),
-- or to service_role for the project's backend key.
-- tutoring_authenticated is declared in policies/, so rlsctl creates it before
-- this migration runs.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tutoring_anon') THEN
        CREATE ROLE tutoring_anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tutoring_service_role') THEN
        CREATE ROLE tutoring_service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tutoring_authenticator') THEN
        CREATE ROLE tutoring_authenticator LOGIN NOINHERIT;
    END IF;
END
$$;

GRANT tutoring_anon, tutoring_authenticated, tutoring_service_role TO tutoring_authenticator;
GRANT USAGE ON SCHEMA public TO tutoring_anon, tutoring_authenticated, tutoring_service_role;

-- Supabase's default privileges: every table and function the admin creates
-- in public is granted to all three API roles.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON TABLES TO tutoring_anon, tutoring_authenticated, tutoring_service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO tutoring_anon, tutoring_authenticated, tutoring_service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO tutoring_anon, tutoring_authenticated, tutoring_service_role;
