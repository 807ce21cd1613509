-- Tutoring schools (tenants) with their students, teachers, lessons, attendance
-- and payments. Tenant tables are never for anon: stop the default grant first.
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM tutoring_anon;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM tutoring_anon;

CREATE TABLE students (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),   -- the student's auth user id (JWT sub)
    tenant_id  uuid NOT NULL,
    full_name  text NOT NULL,
    email      text NOT NULL,
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id)
);

CREATE TABLE teachers (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    full_name  text NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE lessons (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    teacher_id uuid NOT NULL,
    student_id uuid NOT NULL,
    starts_at  timestamptz NOT NULL,
    minutes    integer NOT NULL DEFAULT 60,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, teacher_id) REFERENCES teachers (tenant_id, id),
    FOREIGN KEY (tenant_id, student_id) REFERENCES students (tenant_id, id)
);

CREATE TABLE attendance (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    lesson_id  uuid NOT NULL,
    student_id uuid NOT NULL,
    status     text NOT NULL DEFAULT 'present',
    UNIQUE (tenant_id, lesson_id, student_id),
    FOREIGN KEY (tenant_id, lesson_id) REFERENCES lessons (tenant_id, id),
    FOREIGN KEY (tenant_id, student_id) REFERENCES students (tenant_id, id)
);

CREATE TABLE payments (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL,
    student_id uuid NOT NULL,
    amount     numeric(10,2) NOT NULL,
    paid_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, student_id) REFERENCES students (tenant_id, id)
);

-- Who the signed-in user is, from the JWT PostgREST puts in request.jwt.claims.
-- STABLE SQL, so the policies evaluate them once per statement.
CREATE SCHEMA auth_claims;
GRANT USAGE ON SCHEMA auth_claims TO tutoring_authenticated;

CREATE FUNCTION auth_claims.user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid $$;

CREATE FUNCTION auth_claims.is_student() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'user_role' = 'student', false) $$;

-- Support staff of the tutoring platform itself, not of one school.
CREATE FUNCTION auth_claims.is_staff() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'user_role' = 'staff', false) $$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA auth_claims FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth_claims TO tutoring_authenticated;
