-- A campaign starts as a draft and moves draft -> running -> completed, never
-- back and never skipping a step. The trigger runs as the caller (SECURITY
-- INVOKER), so it sees only what the caller's tenant policy lets it see.
CREATE FUNCTION campaign_status_moves_forward() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION 'a campaign starts as a draft, not %', NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status
       AND (OLD.status, NEW.status) NOT IN (('draft', 'running'), ('running', 'completed')) THEN
        RAISE EXCEPTION 'campaign % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER campaigns_status_moves_forward
    BEFORE INSERT OR UPDATE OF status ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaign_status_moves_forward();
