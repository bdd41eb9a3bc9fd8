/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: 127.0.0.1    Database: t_dumpshape
-- ------------------------------------------------------
-- Server version	10.11.19-MariaDB-0+deb12u1-log

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;

-- A corresponding to the above master-data CHANGE-MASTER settings to the slave gtid state is printed later in the file.

--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
-- Use this when creating a slave of the master server where the backup was made.
-- The new server will be connecting to the master server where the backup was taken.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=16086410;

--
-- Table structure for table `audit_log`
--

DROP TABLE IF EXISTS `audit_log`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `audit_log` (
  `occurred_at` datetime(6) NOT NULL,
  `table_name` varchar(64) NOT NULL,
  `action` varchar(16) NOT NULL,
  `row_pk` bigint(20) unsigned DEFAULT NULL,
  `actor` varchar(128) NOT NULL,
  `details` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`details`)),
  KEY `idx_audit_log_occurred` (`occurred_at`),
  KEY `idx_audit_log_row` (`table_name`,`row_pk`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `audit_log`
--

LOCK TABLES `audit_log` WRITE;
/*!40000 ALTER TABLE `audit_log` DISABLE KEYS */;
INSERT INTO `audit_log` VALUES
('2026-12-02 01:02:53.390486','visits','INSERT',1,'dr_admin@127.0.0.1','{\"pet_id\": 1, \"vet_id\": 3, \"visit_date\": \"2025-12-18 09:30:27\"}');
/*!40000 ALTER TABLE `audit_log` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `invoices`
--

DROP TABLE IF EXISTS `invoices`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `invoices` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `visit_id` int(10) unsigned NOT NULL,
  `invoice_number` varchar(20) NOT NULL,
  `issued_on` date NOT NULL,
  `currency` char(3) NOT NULL,
  `amount` decimal(10,2) NOT NULL,
  `tax` decimal(10,2) NOT NULL,
  `total` decimal(10,2) NOT NULL,
  `status` enum('open','paid','void') NOT NULL DEFAULT 'open',
  `paid_at` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_invoices_visit` (`visit_id`),
  UNIQUE KEY `uq_invoices_number` (`invoice_number`),
  KEY `idx_invoices_status` (`status`,`issued_on`),
  CONSTRAINT `fk_invoices_visit` FOREIGN KEY (`visit_id`) REFERENCES `visits` (`id`) ON DELETE CASCADE,
  CONSTRAINT `chk_invoices_total` CHECK (`total` = `amount` + `tax`)
) ENGINE=InnoDB AUTO_INCREMENT=308 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `invoices`
--

LOCK TABLES `invoices` WRITE;
/*!40000 ALTER TABLE `invoices` DISABLE KEYS */;
INSERT INTO `invoices` VALUES
(1,1,'INV-00000001','2025-12-18','GBP',514.35,102.87,617.22,'paid','2026-01-16 10:30:27');
/*!40000 ALTER TABLE `invoices` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `owners`
--

DROP TABLE IF EXISTS `owners`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `owners` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `first_name` varchar(60) NOT NULL,
  `last_name` varchar(60) NOT NULL,
  `address` varchar(255) NOT NULL,
  `city` varchar(80) NOT NULL,
  `postal_code` varchar(16) NOT NULL,
  `country` char(2) NOT NULL,
  `telephone` varchar(32) NOT NULL,
  `email` varchar(254) DEFAULT NULL,
  `notes` text DEFAULT NULL,
  `created_at` datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `idx_owners_last_name` (`last_name`)
) ENGINE=InnoDB AUTO_INCREMENT=62 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `owners`
--

LOCK TABLES `owners` WRITE;
/*!40000 ALTER TABLE `owners` DISABLE KEYS */;
INSERT INTO `owners` VALUES
(1,'Yuki','Gonçalves','192 Nørrebrogade','Edinburgh','NM3 2TS','GB','+44 371 242 5040','yuki.goncalves1@example.org',NULL,'2024-09-06 18:45:09');
/*!40000 ALTER TABLE `owners` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `pet_photos`
--

DROP TABLE IF EXISTS `pet_photos`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `pet_photos` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `pet_id` int(10) unsigned NOT NULL,
  `filename` varchar(255) NOT NULL,
  `content_type` varchar(64) NOT NULL,
  `taken_at` datetime NOT NULL,
  `sha256` char(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  `data` mediumblob NOT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_pet_photos_pet` (`pet_id`),
  CONSTRAINT `fk_pet_photos_pet` FOREIGN KEY (`pet_id`) REFERENCES `pets` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB AUTO_INCREMENT=46 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `pet_photos`
--

LOCK TABLES `pet_photos` WRITE;
/*!40000 ALTER TABLE `pet_photos` DISABLE KEYS */;
INSERT INTO `pet_photos` VALUES
(1,2,'pet_2_0.jpg','image/jpeg','2025-08-09 12:45:17','16004e2af1a852c3662bdfd7468c2b61841dcc1c5b4e9d760c37b0bfc72e1404',0x89504E470D0A1A0A);
/*!40000 ALTER TABLE `pet_photos` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `pet_types`
--

DROP TABLE IF EXISTS `pet_types`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `pet_types` (
  `id` smallint(5) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(40) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_pet_types_name` (`name`)
) ENGINE=InnoDB AUTO_INCREMENT=11 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `pet_types`
--

LOCK TABLES `pet_types` WRITE;
/*!40000 ALTER TABLE `pet_types` DISABLE KEYS */;
INSERT INTO `pet_types` VALUES
(5,'bird');
/*!40000 ALTER TABLE `pet_types` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `pets`
--

DROP TABLE IF EXISTS `pets`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `pets` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `owner_id` int(10) unsigned NOT NULL,
  `type_id` smallint(5) unsigned NOT NULL,
  `name` varchar(60) NOT NULL,
  `birth_date` date NOT NULL,
  `attributes` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL CHECK (json_valid(`attributes`)),
  PRIMARY KEY (`id`),
  KEY `idx_pets_name` (`name`),
  KEY `fk_pets_owner` (`owner_id`),
  KEY `fk_pets_type` (`type_id`),
  CONSTRAINT `fk_pets_owner` FOREIGN KEY (`owner_id`) REFERENCES `owners` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_pets_type` FOREIGN KEY (`type_id`) REFERENCES `pet_types` (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=108 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `pets`
--

LOCK TABLES `pets` WRITE;
/*!40000 ALTER TABLE `pets` DISABLE KEYS */;
INSERT INTO `pets` VALUES
(1,1,1,'もも','2020-12-06','{\"color\": \"cream\", \"weight_kg\": 6.17, \"neutered\": true, \"microchip\": \"985681830843906\", \"temperament\": \"calm\", \"diet\": \"hypoallergenic\", \"allergies\": [], \"vaccinations\": []}');
/*!40000 ALTER TABLE `pets` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `specialties`
--

DROP TABLE IF EXISTS `specialties`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `specialties` (
  `id` smallint(5) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(80) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_specialties_name` (`name`)
) ENGINE=InnoDB AUTO_INCREMENT=11 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `specialties`
--

LOCK TABLES `specialties` WRITE;
/*!40000 ALTER TABLE `specialties` DISABLE KEYS */;
INSERT INTO `specialties` VALUES
(10,'anaesthesia');
/*!40000 ALTER TABLE `specialties` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Temporary table structure for view `v_pet_visits`
--

DROP TABLE IF EXISTS `v_pet_visits`;
/*!50001 DROP VIEW IF EXISTS `v_pet_visits`*/;
SET @saved_cs_client     = @@character_set_client;
SET character_set_client = utf8mb4;
/*!50001 CREATE VIEW `v_pet_visits` AS SELECT
 NULL AS `visit_id`,
 NULL AS `visit_date`,
 NULL AS `pet_id`,
 NULL AS `pet_name`,
 NULL AS `pet_type`,
 NULL AS `owner_id`,
 NULL AS `owner_name`,
 NULL AS `vet_name`,
 NULL AS `description`,
 NULL AS `invoice_total`,
 NULL AS `invoice_currency`,
 NULL AS `invoice_status` */;
SET character_set_client = @saved_cs_client;

--
-- Table structure for table `vet schedule`
--

DROP TABLE IF EXISTS `vet schedule`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `vet schedule` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `vet_id` int(10) unsigned NOT NULL,
  `day_of_week` tinyint(3) unsigned NOT NULL,
  `starts_at` time NOT NULL,
  `ends_at` time NOT NULL,
  `room` varchar(32) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_vet_schedule_slot` (`vet_id`,`day_of_week`,`starts_at`),
  CONSTRAINT `fk_vet_schedule_vet` FOREIGN KEY (`vet_id`) REFERENCES `vets` (`id`) ON DELETE CASCADE,
  CONSTRAINT `chk_vet_schedule_day` CHECK (`day_of_week` between 1 and 7),
  CONSTRAINT `chk_vet_schedule_hours` CHECK (`ends_at` > `starts_at`)
) ENGINE=InnoDB AUTO_INCREMENT=36 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `vet schedule`
--

LOCK TABLES `vet schedule` WRITE;
/*!40000 ALTER TABLE `vet schedule` DISABLE KEYS */;
INSERT INTO `vet schedule` VALUES
(1,1,1,'07:00:00','11:00:00','X-ray');
/*!40000 ALTER TABLE `vet schedule` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `vet_specialties`
--

DROP TABLE IF EXISTS `vet_specialties`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `vet_specialties` (
  `vet_id` int(10) unsigned NOT NULL,
  `specialty_id` smallint(5) unsigned NOT NULL,
  `certified_on` date NOT NULL,
  PRIMARY KEY (`vet_id`,`specialty_id`),
  KEY `idx_vet_specialties_specialty` (`specialty_id`),
  CONSTRAINT `fk_vet_specialties_specialty` FOREIGN KEY (`specialty_id`) REFERENCES `specialties` (`id`),
  CONSTRAINT `fk_vet_specialties_vet` FOREIGN KEY (`vet_id`) REFERENCES `vets` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `vet_specialties`
--

LOCK TABLES `vet_specialties` WRITE;
/*!40000 ALTER TABLE `vet_specialties` DISABLE KEYS */;
INSERT INTO `vet_specialties` VALUES
(1,4,'2026-11-26');
/*!40000 ALTER TABLE `vet_specialties` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `vets`
--

DROP TABLE IF EXISTS `vets`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `vets` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `first_name` varchar(60) NOT NULL,
  `last_name` varchar(60) NOT NULL,
  `email` varchar(254) NOT NULL,
  `license_number` varchar(32) NOT NULL,
  `hired_on` date NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_vets_license` (`license_number`),
  KEY `idx_vets_last_name` (`last_name`)
) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `vets`
--

LOCK TABLES `vets` WRITE;
/*!40000 ALTER TABLE `vets` DISABLE KEYS */;
INSERT INTO `vets` VALUES
(1,'Hiroshi','McTavish','hiroshi.mctavish.1@clinic.example','VET-000001','2026-04-12');
/*!40000 ALTER TABLE `vets` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `visits`
--

DROP TABLE IF EXISTS `visits`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `visits` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `pet_id` int(10) unsigned NOT NULL,
  `vet_id` int(10) unsigned DEFAULT NULL,
  `visit_date` datetime NOT NULL,
  `weight_kg` decimal(6,2) DEFAULT NULL,
  `description` text NOT NULL,
  PRIMARY KEY (`id`),
  KEY `idx_visits_pet_date` (`pet_id`,`visit_date`),
  KEY `idx_visits_date` (`visit_date`),
  KEY `fk_visits_vet` (`vet_id`),
  CONSTRAINT `fk_visits_pet` FOREIGN KEY (`pet_id`) REFERENCES `pets` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_visits_vet` FOREIGN KEY (`vet_id`) REFERENCES `vets` (`id`) ON DELETE SET NULL
) ENGINE=InnoDB AUTO_INCREMENT=375 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `visits`
--

LOCK TABLES `visits` WRITE;
/*!40000 ALTER TABLE `visits` DISABLE KEYS */;
INSERT INTO `visits` VALUES
(1,1,3,'2025-12-18 09:30:27',NULL,'Skin rash, owner says \'it started on Monday\'');
/*!40000 ALTER TABLE `visits` ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`dr_admin`@`127.0.0.1`*/ /*!50003 TRIGGER visits_after_insert
AFTER INSERT ON visits
FOR EACH ROW
BEGIN
    INSERT INTO audit_log (occurred_at, table_name, action, row_pk, actor, details)
    VALUES (NOW(6), 'visits', 'INSERT', NEW.id, CURRENT_USER(),
            JSON_OBJECT('pet_id', NEW.pet_id, 'vet_id', NEW.vet_id,
                        'visit_date', DATE_FORMAT(NEW.visit_date, '%Y-%m-%d %H:%i:%s')));
END 
*/;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;

--
-- Dumping events for database 't_dumpshape'
--
/*!50106 SET @save_time_zone= @@TIME_ZONE */ ;
/*!50106 DROP EVENT IF EXISTS `purge_old_audit` */;
DELIMITER ;;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;;
/*!50003 SET character_set_client  = utf8mb4 */ ;;
/*!50003 SET character_set_results = utf8mb4 */ ;;
/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;;
/*!50003 SET @saved_time_zone      = @@time_zone */ ;;
/*!50003 SET time_zone             = 'SYSTEM' */ ;;
/*!50106 CREATE*/ /*!50117 DEFINER=`dr_admin`@`127.0.0.1`*/ /*!50106 EVENT `purge_old_audit` ON SCHEDULE EVERY 1 DAY STARTS '2026-12-02 01:02:53' ON COMPLETION PRESERVE DISABLE COMMENT 'Purge audit_log rows older than 5 years (disabled in the lab)' DO DELETE FROM audit_log WHERE occurred_at < NOW(6) - INTERVAL 5 YEAR 
*/ ;;
/*!50003 SET time_zone             = @saved_time_zone */ ;;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;;
/*!50003 SET character_set_client  = @saved_cs_client */ ;;
/*!50003 SET character_set_results = @saved_cs_results */ ;;
/*!50003 SET collation_connection  = @saved_col_connection */ ;;
DELIMITER ;
/*!50106 SET TIME_ZONE= @save_time_zone */ ;

--
-- Dumping routines for database 't_dumpshape'
--
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
/*!50003 DROP FUNCTION IF EXISTS `pet_age_years` */;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;
DELIMITER ;;
CREATE DEFINER=`dr_admin`@`127.0.0.1` FUNCTION `pet_age_years`(p_pet_id INT UNSIGNED) RETURNS decimal(5,2)
    READS SQL DATA
    SQL SECURITY INVOKER
    COMMENT 'Age of a pet in years (2 decimals), NULL for an unknown pet'
BEGIN
    DECLARE v_birth DATE;
    
    SET v_birth = (SELECT birth_date FROM pets WHERE id = p_pet_id);
    IF v_birth IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN ROUND(DATEDIFF(CURRENT_DATE, v_birth) / 365.25, 2);
END
;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION' */ ;
/*!50003 DROP PROCEDURE IF EXISTS `add_visit` */;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_general_ci */ ;
DELIMITER ;;
CREATE DEFINER=`dr_admin`@`127.0.0.1` PROCEDURE `add_visit`(
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
END
;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;

--
-- Final view structure for view `v_pet_visits`
--

/*!50001 DROP VIEW IF EXISTS `v_pet_visits`*/;
/*!50001 SET @saved_cs_client          = @@character_set_client */;
/*!50001 SET @saved_cs_results         = @@character_set_results */;
/*!50001 SET @saved_col_connection     = @@collation_connection */;
/*!50001 SET character_set_client      = utf8mb4 */;
/*!50001 SET character_set_results     = utf8mb4 */;
/*!50001 SET collation_connection      = utf8mb4_general_ci */;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`dr_admin`@`127.0.0.1` SQL SECURITY INVOKER */
/*!50001 VIEW `v_pet_visits` AS select `v`.`id` AS `visit_id`,`v`.`visit_date` AS `visit_date`,`p`.`id` AS `pet_id`,`p`.`name` AS `pet_name`,`t`.`name` AS `pet_type`,`o`.`id` AS `owner_id`,concat(`o`.`first_name`,' ',`o`.`last_name`) AS `owner_name`,concat(`vt`.`first_name`,' ',`vt`.`last_name`) AS `vet_name`,`v`.`description` AS `description`,`i`.`total` AS `invoice_total`,`i`.`currency` AS `invoice_currency`,`i`.`status` AS `invoice_status` from (((((`visits` `v` join `pets` `p` on(`p`.`id` = `v`.`pet_id`)) join `owners` `o` on(`o`.`id` = `p`.`owner_id`)) join `pet_types` `t` on(`t`.`id` = `p`.`type_id`)) left join `vets` `vt` on(`vt`.`id` = `v`.`vet_id`)) left join `invoices` `i` on(`i`.`visit_id` = `v`.`id`)) */;
/*!50001 SET character_set_client      = @saved_cs_client */;
/*!50001 SET character_set_results     = @saved_cs_results */;
/*!50001 SET collation_connection      = @saved_col_connection */;

-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows

-- Preferably use GTID to start replication from GTID position:

-- SET GLOBAL gtid_slave_pos='0-1-97';
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2026-12-02  1:02:53
