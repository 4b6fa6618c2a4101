-- One database per service; no service reads another's.
CREATE DATABASE orders;
CREATE DATABASE inventory;
CREATE DATABASE fulfillment;
CREATE DATABASE shipping;
