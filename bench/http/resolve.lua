-- wrk script: resolve one of 10,000 Telegram chats per request (state hits
-- once set.lua has run).
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/instances/default/resolve", {["Content-Type"] = "application/json"},
    '{"session_key":"telegram:bot_1:chat_' .. (counter % 10000) .. '"}')
end
