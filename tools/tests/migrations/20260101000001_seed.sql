INSERT INTO accounts (id, owner, balance) VALUES (1, 'ada', 100);
