ALTER TABLE "measurements" DROP CONSTRAINT "measurements_user_id_users_id_fk";
