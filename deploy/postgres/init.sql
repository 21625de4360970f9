-- One database per component: a service reads and writes only its own.
CREATE DATABASE gateway;
CREATE DATABASE listings;
CREATE DATABASE bookings;
CREATE DATABASE consultants;
CREATE DATABASE billing;
CREATE DATABASE notifications;
