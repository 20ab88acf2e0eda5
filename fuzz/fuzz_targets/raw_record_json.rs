#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_parse_fuzz::fuzz_schemas("raw_record_json", data));
