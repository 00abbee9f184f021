-- seed-directory.sql -- the demo business directory of `make run` (tenant dev): 16
-- businesses in two cities across the agents' categories, with opening hours, prices,
-- ratings and services / menu items, so the global flow has something to rank and the
-- dedicated flow something to quote. Run by deploy/local/seed-directory.sh after
-- `flowd migrate`.
--
-- Idempotent: every id is derived from a fixed name (md5 -> uuid) and every insert skips
-- rows that exist, so re-running adds nothing and never undoes edits made through the API.

INSERT INTO tenants (id, name) VALUES ('dev', 'Development tenant') ON CONFLICT (id) DO NOTHING;

WITH hrs(kind, hours) AS (VALUES
    ('restaurant', '{"tuesday": {"open": "11:30", "close": "22:00"}, "wednesday": {"open": "11:30", "close": "22:00"}, "thursday": {"open": "11:30", "close": "22:00"}, "friday": {"open": "11:30", "close": "23:30"}, "saturday": {"open": "12:00", "close": "23:30"}, "sunday": {"open": "12:00", "close": "21:00"}}'),
    ('cafe', '{"monday": {"open": "07:00", "close": "18:00"}, "tuesday": {"open": "07:00", "close": "18:00"}, "wednesday": {"open": "07:00", "close": "18:00"}, "thursday": {"open": "07:00", "close": "18:00"}, "friday": {"open": "07:00", "close": "18:00"}, "saturday": {"open": "08:00", "close": "16:00"}}'),
    ('salon', '{"tuesday": {"open": "09:00", "close": "19:00"}, "wednesday": {"open": "09:00", "close": "19:00"}, "thursday": {"open": "09:00", "close": "20:00"}, "friday": {"open": "09:00", "close": "20:00"}, "saturday": {"open": "09:00", "close": "17:00"}}'),
    ('garage', '{"monday": {"open": "07:30", "close": "18:00"}, "tuesday": {"open": "07:30", "close": "18:00"}, "wednesday": {"open": "07:30", "close": "18:00"}, "thursday": {"open": "07:30", "close": "18:00"}, "friday": {"open": "07:30", "close": "18:00"}, "saturday": {"open": "08:00", "close": "12:00"}}'),
    ('office', '{"monday": {"open": "08:00", "close": "17:00"}, "tuesday": {"open": "08:00", "close": "17:00"}, "wednesday": {"open": "08:00", "close": "17:00"}, "thursday": {"open": "08:00", "close": "17:00"}, "friday": {"open": "08:00", "close": "15:00"}}'),
    ('always', '{"monday": {"open": "00:00", "close": "24:00"}, "tuesday": {"open": "00:00", "close": "24:00"}, "wednesday": {"open": "00:00", "close": "24:00"}, "thursday": {"open": "00:00", "close": "24:00"}, "friday": {"open": "00:00", "close": "24:00"}, "saturday": {"open": "00:00", "close": "24:00"}, "sunday": {"open": "00:00", "close": "24:00"}}')
), d(slug, name, category, city, address, phone, hours, rating, price_level, description) AS (VALUES
    ('luigi', 'Luigi''s Trattoria', 'restaurant', 'Springfield', '12 Market Street', '+1 555-0101', 'restaurant', 4.6, 2, 'Family-run Italian trattoria: wood-fired pizza, fresh pasta, tiramisu. Vegetarian options, terrace seating.'),
    ('sakura', 'Sakura Sushi Bar', 'restaurant', 'Springfield', '48 Cherry Lane', '+1 555-0102', 'restaurant', 4.8, 3, 'Omakase and sushi rolls made with fish delivered daily; sake list and a quiet dining room.'),
    ('burger', 'Main Street Burgers', 'restaurant', 'Springfield', '3 Main Street', '+1 555-0103', 'restaurant', 4.1, 1, 'Smash burgers, fries and milkshakes. Cheap, fast, open late on weekends.'),
    ('greenbowl', 'Green Bowl Cafe', 'restaurant', 'Riverton', '77 River Road', '+1 555-0201', 'cafe', 4.4, 1, 'Vegan and vegetarian bowls, salads, smoothies and good coffee; gluten-free choices.'),
    ('taverna', 'Taverna Olympia', 'restaurant', 'Riverton', '5 Harbour Square', '+1 555-0202', 'restaurant', 4.5, 2, 'Greek taverna with grilled seafood, souvlaki, meze platters and a harbour view.'),
    ('pizzanapoli', 'Pizza Napoli', 'restaurant', 'Riverton', '19 Mill Street', '+1 555-0203', 'restaurant', 4.7, 1, 'Neapolitan pizza from a 450 degree oven, by the whole pie or the slice.'),
    ('glow', 'Glow Beauty Salon', 'beauty_salon', 'Springfield', '21 Elm Avenue', '+1 555-0104', 'salon', 4.7, 2, 'Haircuts, colour, balayage, manicure and pedicure. Walk-ins welcome on weekdays.'),
    ('barber', 'Sharp & Co Barbers', 'beauty_salon', 'Riverton', '8 Station Road', '+1 555-0204', 'salon', 4.3, 1, 'Classic barber shop: fades, beard trims and hot towel shaves.'),
    ('spa', 'Lotus Day Spa', 'beauty_salon', 'Riverton', '101 Lake Drive', '+1 555-0205', 'salon', 4.9, 4, 'Massages, facials, nails and a relaxation lounge. Couples packages.'),
    ('autofix', 'AutoFix Garage', 'automotive', 'Springfield', '250 Industrial Way', '+1 555-0105', 'garage', 4.2, 2, 'Oil change, brakes, tyres and diagnostics for all makes; same-day service.'),
    ('tyres', 'Riverton Tyre & Brake', 'automotive', 'Riverton', '66 Ring Road', '+1 555-0206', 'garage', 4.0, 1, 'Tyre fitting, wheel alignment and brake repairs while you wait.'),
    ('smile', 'Smile Dental Clinic', 'health_medical', 'Springfield', '9 Hospital Road', '+1 555-0106', 'office', 4.8, 3, 'General and cosmetic dentistry: check-ups, cleaning, whitening, emergency appointments.'),
    ('physio', 'Riverton Physiotherapy', 'health_medical', 'Riverton', '14 Park Lane', '+1 555-0207', 'office', 4.6, 2, 'Sports injuries, back pain and rehabilitation with licensed physiotherapists.'),
    ('pharmacy', 'Springfield Pharmacy', 'health_medical', 'Springfield', '1 Central Plaza', '+1 555-0107', 'always', 4.4, 1, 'Prescriptions, vaccinations and health advice, open around the clock.'),
    ('plumber', 'QuickFlow Plumbing', 'local_services', 'Springfield', '40 Water Street', '+1 555-0108', 'office', 4.5, 2, 'Emergency plumber: leaks, blocked drains, boiler repair and installation.'),
    ('clean', 'Sparkle Home Cleaning', 'local_services', 'Riverton', '2 Garden Close', '+1 555-0208', 'office', 4.3, 2, 'Regular and deep home cleaning, move-out cleaning, eco-friendly products.')
)
INSERT INTO businesses (id, tenant, name, category, description, address, city, phone, hours,
                        rating, price_level, metadata)
SELECT md5('flowd-demo:' || d.slug)::uuid, 'dev', d.name, d.category, d.description, d.address,
       d.city, d.phone, hrs.hours::jsonb, d.rating, d.price_level, '{"demo": true}'
FROM d JOIN hrs ON hrs.kind = d.hours
ON CONFLICT (id) DO NOTHING;

WITH s(slug, name, price, duration, category, description) AS (VALUES
    ('luigi', 'Margherita Pizza', 12.50, NULL, 'pizza', 'Tomato, mozzarella, basil'),
    ('luigi', 'Diavola Pizza', 14.00, NULL, 'pizza', 'Spicy salami, chili oil'),
    ('luigi', 'Tagliatelle al Ragu', 16.00, NULL, 'pasta', 'Slow-cooked beef ragu'),
    ('luigi', 'Tiramisu', 7.50, NULL, 'dessert', 'Made in house every morning'),
    ('sakura', 'Omakase (12 pieces)', 65.00, NULL, 'sushi', 'Chef''s selection'),
    ('sakura', 'Salmon Avocado Roll', 11.00, NULL, 'sushi', NULL),
    ('sakura', 'Miso Soup', 4.00, NULL, 'soup', NULL),
    ('burger', 'Classic Smash Burger', 9.50, NULL, 'burger', 'Two patties, cheese, pickles'),
    ('burger', 'Veggie Burger', 9.00, NULL, 'burger', 'Black bean patty'),
    ('burger', 'Fries', 3.50, NULL, 'side', NULL),
    ('greenbowl', 'Buddha Bowl', 11.50, NULL, 'bowl', 'Quinoa, roasted vegetables, tahini'),
    ('greenbowl', 'Green Smoothie', 6.00, NULL, 'drink', NULL),
    ('taverna', 'Meze Platter', 18.00, NULL, 'starter', 'For two'),
    ('taverna', 'Grilled Octopus', 22.00, NULL, 'seafood', NULL),
    ('taverna', 'Chicken Souvlaki', 15.00, NULL, 'grill', NULL),
    ('pizzanapoli', 'Marinara Pizza', 9.00, NULL, 'pizza', 'Tomato, garlic, oregano'),
    ('pizzanapoli', 'Margherita Pizza', 10.00, NULL, 'pizza', NULL),
    ('pizzanapoli', 'Slice of the Day', 3.50, NULL, 'pizza', NULL),
    ('glow', 'Women''s Haircut', 55.00, 60, 'hair', 'Wash, cut and blow-dry'),
    ('glow', 'Balayage', 140.00, 180, 'colour', NULL),
    ('glow', 'Gel Manicure', 35.00, 45, 'nails', NULL),
    ('barber', 'Skin Fade', 25.00, 30, 'hair', NULL),
    ('barber', 'Beard Trim', 15.00, 20, 'beard', NULL),
    ('barber', 'Hot Towel Shave', 30.00, 40, 'beard', NULL),
    ('spa', 'Deep Tissue Massage', 95.00, 60, 'massage', NULL),
    ('spa', 'Signature Facial', 110.00, 75, 'facial', NULL),
    ('autofix', 'Oil Change', 49.00, 30, 'maintenance', 'Synthetic oil and filter'),
    ('autofix', 'Brake Pads (front)', 180.00, 90, 'brakes', 'Parts and labour'),
    ('autofix', 'Diagnostic Check', 60.00, 45, 'diagnostics', NULL),
    ('tyres', 'Tyre Fitting (per tyre)', 20.00, 15, 'tyres', NULL),
    ('tyres', 'Wheel Alignment', 65.00, 45, 'tyres', NULL),
    ('smile', 'Check-up and Cleaning', 90.00, 45, 'dental', NULL),
    ('smile', 'Teeth Whitening', 350.00, 90, 'cosmetic', NULL),
    ('smile', 'Emergency Appointment', 120.00, 30, 'dental', NULL),
    ('physio', 'Initial Assessment', 85.00, 60, 'physio', NULL),
    ('physio', 'Follow-up Session', 65.00, 45, 'physio', NULL),
    ('pharmacy', 'Flu Vaccination', 25.00, 10, 'vaccination', NULL),
    ('pharmacy', 'Blood Pressure Check', 0.00, 10, 'screening', 'Free'),
    ('plumber', 'Emergency Call-out', 120.00, 60, 'plumbing', 'Within 2 hours, day or night'),
    ('plumber', 'Boiler Service', 95.00, 60, 'heating', NULL),
    ('clean', 'Regular Clean (3 hours)', 75.00, 180, 'cleaning', NULL),
    ('clean', 'Deep Clean', 220.00, 360, 'cleaning', 'Whole home, inside cupboards and oven')
)
INSERT INTO services (id, tenant, business_id, name, description, price, currency,
                      duration_minutes, category)
SELECT md5('flowd-demo:' || s.slug || ':' || s.name)::uuid, 'dev', b.id, s.name,
       coalesce(s.description, ''), s.price, 'USD', s.duration, s.category
FROM s JOIN businesses b ON b.id = md5('flowd-demo:' || s.slug)::uuid AND b.tenant = 'dev'
ON CONFLICT DO NOTHING;
