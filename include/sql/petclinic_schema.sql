-- Pet clinic sample application schema for the multicloud-dr lab.
--
-- Target: MariaDB 10.11; also valid on MySQL 8.0.16+ (CHECK constraints are enforced from 8.0.16).
--
-- Loading contract:
--   * The caller creates and selects the database (this file has no CREATE DATABASE / USE), so the
--     same file can be loaded into any scratch or restore-target database name.
--   * It must be loaded into an EMPTY database, exactly once. It is deliberately not written with
--     IF NOT EXISTS / OR REPLACE: a second load fails loudly on the first CREATE TABLE instead of
--     silently mixing an old and a new object set. Loaders (mariadb CLI, or
--     multicloud_dr.lab.sample_data.create_schema, which refuses a non-empty database) rely on this.
--   * Stored programs use DELIMITER, which is a client-side command: the mariadb/mysql CLI handles
--     it, and sample_data.split_sql_script emulates it for pymysql.
--   * No DEFINER clauses: objects are owned by the loading account. Views and routines use
--     SQL SECURITY INVOKER so that a restore under a different account name still works; the
--     trigger and event necessarily run as their (implicit) definer, which a restore must recreate.
--   * With binary logging on, creating the function/trigger needs SUPER (or
--     log_bin_trust_function_creators=1) unless the routine declares its SQL data access, which
--     pet_age_years does (READS SQL DATA).
--
-- The data in it exercises what a backup/restore must preserve: utf8mb4 text incl. 4-byte emoji,
-- JSON, exact DECIMALs, binary BLOBs, a table without a primary key, an identifier that needs
-- quoting, foreign keys, and non-table objects (view, trigger, procedure, function, event).

CREATE TABLE owners (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    first_name  VARCHAR(60)  NOT NULL,
    last_name   VARCHAR(60)  NOT NULL,
    address     VARCHAR(255) NOT NULL,
    city        VARCHAR(80)  NOT NULL,
    postal_code VARCHAR(16)  NOT NULL,
    country     CHAR(2)      NOT NULL,
    telephone   VARCHAR(32)  NOT NULL,
    email       VARCHAR(254) NULL,
    notes       TEXT         NULL,
    created_at  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    KEY idx_owners_last_name (last_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE pet_types (
    id   SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(40)       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_pet_types_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- On MariaDB, JSON is an alias for LONGTEXT COLLATE utf8mb4_bin plus an automatic
-- CHECK (JSON_VALID(...)); on MySQL it is the native binary JSON type. Dumps taken on one and
-- restored on the other therefore change the column's physical type but not its content.
CREATE TABLE pets (
    id         INT UNSIGNED      NOT NULL AUTO_INCREMENT,
    owner_id   INT UNSIGNED      NOT NULL,
    type_id    SMALLINT UNSIGNED NOT NULL,
    name       VARCHAR(60)       NOT NULL,
    birth_date DATE              NOT NULL,
    attributes JSON              NOT NULL,
    PRIMARY KEY (id),
    KEY idx_pets_name (name),
    CONSTRAINT fk_pets_owner FOREIGN KEY (owner_id) REFERENCES owners (id) ON DELETE CASCADE,
    CONSTRAINT fk_pets_type FOREIGN KEY (type_id) REFERENCES pet_types (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE vets (
    id             INT UNSIGNED NOT NULL AUTO_INCREMENT,
    first_name     VARCHAR(60)  NOT NULL,
    last_name      VARCHAR(60)  NOT NULL,
    email          VARCHAR(254) NOT NULL,
    license_number VARCHAR(32)  NOT NULL,
    hired_on       DATE         NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_vets_license (license_number),
    KEY idx_vets_last_name (last_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE specialties (
    id   SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name VARCHAR(80)       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_specialties_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE vet_specialties (
    vet_id       INT UNSIGNED      NOT NULL,
    specialty_id SMALLINT UNSIGNED NOT NULL,
    certified_on DATE              NOT NULL,
    PRIMARY KEY (vet_id, specialty_id),
    KEY idx_vet_specialties_specialty (specialty_id),
    CONSTRAINT fk_vet_specialties_vet FOREIGN KEY (vet_id) REFERENCES vets (id) ON DELETE CASCADE,
    CONSTRAINT fk_vet_specialties_specialty FOREIGN KEY (specialty_id) REFERENCES specialties (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE visits (
    id          INT UNSIGNED NOT NULL AUTO_INCREMENT,
    pet_id      INT UNSIGNED NOT NULL,
    vet_id      INT UNSIGNED NULL,
    visit_date  DATETIME     NOT NULL,
    weight_kg   DECIMAL(6,2) NULL,
    description TEXT         NOT NULL,
    PRIMARY KEY (id),
    KEY idx_visits_pet_date (pet_id, visit_date),
    KEY idx_visits_date (visit_date),
    CONSTRAINT fk_visits_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE,
    CONSTRAINT fk_visits_vet FOREIGN KEY (vet_id) REFERENCES vets (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- At most one invoice per visit; invoice_number is derived from the visit id ('INV-' + 8 digits)
-- by both the generator and add_visit, so the two writers can never collide.
CREATE TABLE invoices (
    id             INT UNSIGNED  NOT NULL AUTO_INCREMENT,
    visit_id       INT UNSIGNED  NOT NULL,
    invoice_number VARCHAR(20)   NOT NULL,
    issued_on      DATE          NOT NULL,
    currency       CHAR(3)       NOT NULL,
    amount         DECIMAL(10,2) NOT NULL,
    tax            DECIMAL(10,2) NOT NULL,
    total          DECIMAL(10,2) NOT NULL,
    status         ENUM('open', 'paid', 'void') NOT NULL DEFAULT 'open',
    paid_at        DATETIME      NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_invoices_visit (visit_id),
    UNIQUE KEY uq_invoices_number (invoice_number),
    KEY idx_invoices_status (status, issued_on),
    CONSTRAINT fk_invoices_visit FOREIGN KEY (visit_id) REFERENCES visits (id) ON DELETE CASCADE,
    CONSTRAINT chk_invoices_total CHECK (total = amount + tax)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE pet_photos (
    id           INT UNSIGNED NOT NULL AUTO_INCREMENT,
    pet_id       INT UNSIGNED NOT NULL,
    filename     VARCHAR(255) NOT NULL,
    content_type VARCHAR(64)  NOT NULL,
    taken_at     DATETIME     NOT NULL,
    sha256       CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    data         MEDIUMBLOB   NOT NULL,
    PRIMARY KEY (id),
    KEY idx_pet_photos_pet (pet_id),
    CONSTRAINT fk_pet_photos_pet FOREIGN KEY (pet_id) REFERENCES pets (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- audit_log intentionally has NO primary key (and no unique key). It is the lab's
-- "table without a PK" case that every backup/restore/replication path must cope with:
--   * InnoDB clusters it on a hidden 6-byte row id, so rows have no stable identity outside the
--     server; row-based replication and CDC tools must full-scan to apply UPDATE/DELETE, and
--     tools that chunk by PK (or require one) must fall back or refuse;
--   * Galera / MariaDB Cluster and several managed services reject or mishandle writes to it;
--   * MySQL with sql_require_primary_key=ON refuses this CREATE TABLE, MariaDB with
--     innodb_force_primary_key=ON likewise, and MySQL 8.0.30+ with
--     sql_generate_invisible_primary_key=ON silently adds an invisible my_row_id column;
--     a restore target configured that way will not round-trip this table unchanged.
-- Do not "fix" it by adding a key: its absence is the point.
CREATE TABLE audit_log (
    occurred_at DATETIME(6)     NOT NULL,
    table_name  VARCHAR(64)     NOT NULL,
    action      VARCHAR(16)     NOT NULL,
    row_pk      BIGINT UNSIGNED NULL,
    actor       VARCHAR(128)    NOT NULL,
    details     JSON            NULL,
    KEY idx_audit_log_occurred (occurred_at),
    KEY idx_audit_log_row (table_name, row_pk)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A table name containing a space: every tool in the backup path must quote identifiers.
CREATE TABLE `vet schedule` (
    id          INT UNSIGNED     NOT NULL AUTO_INCREMENT,
    vet_id      INT UNSIGNED     NOT NULL,
    day_of_week TINYINT UNSIGNED NOT NULL,
    starts_at   TIME             NOT NULL,
    ends_at     TIME             NOT NULL,
    room        VARCHAR(32)      NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_vet_schedule_slot (vet_id, day_of_week, starts_at),
    CONSTRAINT fk_vet_schedule_vet FOREIGN KEY (vet_id) REFERENCES vets (id) ON DELETE CASCADE,
    CONSTRAINT chk_vet_schedule_day CHECK (day_of_week BETWEEN 1 AND 7),
    CONSTRAINT chk_vet_schedule_hours CHECK (ends_at > starts_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE SQL SECURITY INVOKER VIEW v_pet_visits AS
SELECT
    v.id                                   AS visit_id,
    v.visit_date                           AS visit_date,
    p.id                                   AS pet_id,
    p.name                                 AS pet_name,
    t.name                                 AS pet_type,
    o.id                                   AS owner_id,
    CONCAT(o.first_name, ' ', o.last_name) AS owner_name,
    CONCAT(vt.first_name, ' ', vt.last_name) AS vet_name,
    v.description                          AS description,
    i.total                                AS invoice_total,
    i.currency                             AS invoice_currency,
    i.status                               AS invoice_status
FROM visits v
JOIN pets p ON p.id = v.pet_id
JOIN owners o ON o.id = p.owner_id
JOIN pet_types t ON t.id = p.type_id
LEFT JOIN vets vt ON vt.id = v.vet_id
LEFT JOIN invoices i ON i.visit_id = v.id;

DELIMITER $$

-- Every visit leaves an audit trail, so audit_log grows with visits even though the
-- application never writes to it directly for them.
CREATE TRIGGER visits_after_insert
AFTER INSERT ON visits
FOR EACH ROW
BEGIN
    INSERT INTO audit_log (occurred_at, table_name, action, row_pk, actor, details)
    VALUES (NOW(6), 'visits', 'INSERT', NEW.id, CURRENT_USER(),
            JSON_OBJECT('pet_id', NEW.pet_id, 'vet_id', NEW.vet_id,
                        'visit_date', DATE_FORMAT(NEW.visit_date, '%Y-%m-%d %H:%i:%s')));
END$$

-- Books a visit and, when an amount is given, its invoice (tax at a flat 20%; the generator
-- uses per-country rates). Returns the new visit id through p_visit_id.
CREATE PROCEDURE add_visit(
    IN  p_pet_id      INT UNSIGNED,
    IN  p_vet_id      INT UNSIGNED,
    IN  p_visit_date  DATETIME,
    IN  p_description TEXT,
    IN  p_amount      DECIMAL(10,2),
    OUT p_visit_id    INT UNSIGNED
)
MODIFIES SQL DATA
SQL SECURITY INVOKER
COMMENT 'Insert a visit (and its invoice when p_amount is not NULL); p_visit_id receives the id'
BEGIN
    DECLARE v_tax DECIMAL(10,2);

    INSERT INTO visits (pet_id, vet_id, visit_date, description)
    VALUES (p_pet_id, p_vet_id, p_visit_date, p_description);
    SET p_visit_id = LAST_INSERT_ID();

    IF p_amount IS NOT NULL THEN
        SET v_tax = ROUND(p_amount * 0.20, 2);
        INSERT INTO invoices (visit_id, invoice_number, issued_on, currency, amount, tax, total, status)
        VALUES (p_visit_id, CONCAT('INV-', LPAD(p_visit_id, 8, '0')), DATE(p_visit_date), 'EUR',
                p_amount, v_tax, p_amount + v_tax, 'open');
    END IF;
END$$

-- READS SQL DATA (rather than DETERMINISTIC, which would be a lie: it depends on CURRENT_DATE)
-- is what lets this be created with binary logging on without SUPER.
CREATE FUNCTION pet_age_years(p_pet_id INT UNSIGNED)
RETURNS DECIMAL(5,2)
NOT DETERMINISTIC
READS SQL DATA
SQL SECURITY INVOKER
COMMENT 'Age of a pet in years (2 decimals), NULL for an unknown pet'
BEGIN
    DECLARE v_birth DATE;
    -- SET ... = (subquery) instead of SELECT ... INTO: no "No data" warning for an unknown pet.
    SET v_birth = (SELECT birth_date FROM pets WHERE id = p_pet_id);
    IF v_birth IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN ROUND(DATEDIFF(CURRENT_DATE, v_birth) / 365.25, 2);
END$$

-- Created DISABLED: the lab must not delete rows on its own between a backup and the
-- verification of its restore. The event's definition (and DISABLED status) is what a dump with
-- --events must carry over.
CREATE EVENT purge_old_audit
ON SCHEDULE EVERY 1 DAY
ON COMPLETION PRESERVE
DISABLE
COMMENT 'Purge audit_log rows older than 5 years (disabled in the lab)'
DO
    DELETE FROM audit_log WHERE occurred_at < NOW(6) - INTERVAL 5 YEAR$$

DELIMITER ;
